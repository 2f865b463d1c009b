-- Generated from include/reviews/core/warehouse.py by `make schema`; do not edit by hand.

CREATE TABLE action_reminders (
	reminder_id INTEGER NOT NULL, 
	partnership_code VARCHAR(40) NOT NULL, 
	finding_id VARCHAR(100) NOT NULL, 
	state VARCHAR(20) NOT NULL, 
	review_id VARCHAR(100), 
	owner_agency VARCHAR(200), 
	action_due_date DATE, 
	action_status VARCHAR(20), 
	first_seen_as_of DATE NOT NULL, 
	working_days_left INTEGER, 
	recipients TEXT, 
	send_status VARCHAR(20) NOT NULL, 
	attempt INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	sent_at DATETIME, 
	transport VARCHAR(20), 
	message_ref TEXT, 
	error TEXT, 
	PRIMARY KEY (reminder_id), 
	CONSTRAINT uq_action_reminder_once UNIQUE (partnership_code, finding_id, state)
);

CREATE TABLE bulletin_periods (
	period_start DATE NOT NULL, 
	period_end DATE NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	data_status TEXT NOT NULL, 
	checked_as_of DATE NOT NULL, 
	signoff_wanted BOOLEAN NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (period_start, period_end)
);

CREATE TABLE bulletin_redactions (
	redaction_id INTEGER NOT NULL, 
	period_start DATE NOT NULL, 
	period_end DATE NOT NULL, 
	partnership_code VARCHAR(40) NOT NULL, 
	review_id VARCHAR(100), 
	record_id VARCHAR(100) NOT NULL, 
	field VARCHAR(40) NOT NULL, 
	kind VARCHAR(20) NOT NULL, 
	used_in VARCHAR(200), 
	excerpt TEXT, 
	found_at DATETIME NOT NULL, 
	PRIMARY KEY (redaction_id)
);

CREATE TABLE bulletin_signoffs (
	signoff_id INTEGER NOT NULL, 
	period_start DATE NOT NULL, 
	period_end DATE NOT NULL, 
	bulletin_ids TEXT NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	dag_id VARCHAR(250) NOT NULL, 
	run_id VARCHAR(250) NOT NULL, 
	requested_at DATETIME NOT NULL, 
	decided_at DATETIME, 
	decided_by VARCHAR(200), 
	reason TEXT, 
	reminded_at DATETIME, 
	PRIMARY KEY (signoff_id)
);

CREATE TABLE bulletins (
	bulletin_id INTEGER NOT NULL, 
	period_start DATE NOT NULL, 
	period_end DATE NOT NULL, 
	audience VARCHAR(40) NOT NULL, 
	version INTEGER NOT NULL, 
	content_hash VARCHAR(64) NOT NULL, 
	path TEXT NOT NULL, 
	subject VARCHAR(300) NOT NULL, 
	built_at DATETIME NOT NULL, 
	data_status TEXT, 
	PRIMARY KEY (bulletin_id), 
	CONSTRAINT uq_bulletin_version UNIQUE (period_start, period_end, audience, version)
);

CREATE TABLE case_journeys (
	partnership_code VARCHAR(40) NOT NULL, 
	notification_id VARCHAR(100) NOT NULL, 
	as_of_date DATE NOT NULL, 
	rapid_review_id VARCHAR(100), 
	review_id VARCHAR(100), 
	current_stage VARCHAR(40) NOT NULL, 
	current_status VARCHAR(20) NOT NULL, 
	next_due_date DATE, 
	working_days_left INTEGER, 
	decision VARCHAR(40), 
	stages_json TEXT NOT NULL, 
	findings TEXT, 
	flags INTEGER NOT NULL, 
	rejected INTEGER NOT NULL, 
	PRIMARY KEY (partnership_code, notification_id, as_of_date)
);

CREATE TABLE circulation_log (
	send_id INTEGER NOT NULL, 
	bulletin_id INTEGER NOT NULL, 
	recipient VARCHAR(320) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	attempt INTEGER NOT NULL, 
	queued_at DATETIME NOT NULL, 
	sent_at DATETIME, 
	error TEXT, 
	transport VARCHAR(20), 
	message_ref TEXT, 
	PRIMARY KEY (send_id), 
	CONSTRAINT uq_circulation_once UNIQUE (bulletin_id, recipient)
);

CREATE TABLE learning (
	partnership_code VARCHAR(40) NOT NULL, 
	finding_id VARCHAR(100) NOT NULL, 
	review_id VARCHAR(200), 
	theme VARCHAR(200), 
	finding TEXT, 
	recommendation TEXT, 
	owner_agency VARCHAR(200), 
	action_due_date DATE, 
	action_status VARCHAR(200), 
	action_completed_date DATE, 
	return_date DATE NOT NULL, 
	source_file_id INTEGER NOT NULL, 
	source_row INTEGER NOT NULL, 
	row_hash VARCHAR(64) NOT NULL, 
	loaded_at DATETIME NOT NULL, 
	PRIMARY KEY (partnership_code, finding_id)
);

CREATE TABLE legal_holds (
	partnership_code VARCHAR(40) NOT NULL, 
	case_id VARCHAR(100) NOT NULL, 
	reason TEXT NOT NULL, 
	placed_by VARCHAR(200) NOT NULL, 
	placed_at DATETIME NOT NULL, 
	PRIMARY KEY (partnership_code, case_id)
);

CREATE TABLE notifications (
	partnership_code VARCHAR(40) NOT NULL, 
	notification_id VARCHAR(100) NOT NULL, 
	child_key VARCHAR(64) NOT NULL, 
	incident_date DATE, 
	aware_date DATE, 
	notified_date DATE, 
	incident_type VARCHAR(200), 
	age_years INTEGER, 
	sex VARCHAR(200), 
	ethnicity VARCHAR(200), 
	disability VARCHAR(200), 
	looked_after VARCHAR(200), 
	cp_plan VARCHAR(200), 
	cin_plan VARCHAR(200), 
	known_to_csc VARCHAR(200), 
	return_date DATE NOT NULL, 
	source_file_id INTEGER NOT NULL, 
	source_row INTEGER NOT NULL, 
	row_hash VARCHAR(64) NOT NULL, 
	loaded_at DATETIME NOT NULL, 
	PRIMARY KEY (partnership_code, notification_id)
);

CREATE TABLE practice_reviews (
	partnership_code VARCHAR(40) NOT NULL, 
	review_id VARCHAR(100) NOT NULL, 
	notification_id VARCHAR(200), 
	review_type VARCHAR(200), 
	decision_date DATE, 
	author VARCHAR(200), 
	methodology VARCHAR(200), 
	completed_date DATE, 
	final_report_sent_date DATE, 
	published_date DATE, 
	delay_reason VARCHAR(200), 
	not_published_reason VARCHAR(200), 
	improvements_published_date DATE, 
	status VARCHAR(200), 
	return_date DATE NOT NULL, 
	source_file_id INTEGER NOT NULL, 
	source_row INTEGER NOT NULL, 
	row_hash VARCHAR(64) NOT NULL, 
	loaded_at DATETIME NOT NULL, 
	PRIMARY KEY (partnership_code, review_id)
);

CREATE TABLE quarantine (
	quarantine_id INTEGER NOT NULL, 
	partnership_code VARCHAR(40) NOT NULL, 
	dataset VARCHAR(40) NOT NULL, 
	file_id INTEGER NOT NULL, 
	file_name VARCHAR(255) NOT NULL, 
	row_number INTEGER NOT NULL, 
	record_id VARCHAR(100), 
	failed_checks TEXT NOT NULL, 
	failed_rules TEXT, 
	raw_values TEXT NOT NULL, 
	quarantined_at DATETIME NOT NULL, 
	resolved_by_file_id INTEGER, 
	resolved_at DATETIME, 
	PRIMARY KEY (quarantine_id), 
	CONSTRAINT uq_quarantine_row UNIQUE (file_id, dataset, row_number)
);

CREATE INDEX ix_quarantine_record ON quarantine (partnership_code, dataset, record_id);

CREATE INDEX ix_quarantine_resolved_by ON quarantine (resolved_by_file_id) WHERE resolved_by_file_id IS NOT NULL;

CREATE TABLE rapid_reviews (
	partnership_code VARCHAR(40) NOT NULL, 
	rapid_review_id VARCHAR(100) NOT NULL, 
	notification_id VARCHAR(200), 
	completed_date DATE, 
	outcome VARCHAR(200), 
	panel_response_date DATE, 
	panel_decision VARCHAR(200), 
	return_date DATE NOT NULL, 
	source_file_id INTEGER NOT NULL, 
	source_row INTEGER NOT NULL, 
	row_hash VARCHAR(64) NOT NULL, 
	loaded_at DATETIME NOT NULL, 
	PRIMARY KEY (partnership_code, rapid_review_id)
);

CREATE TABLE record_history (
	history_id INTEGER NOT NULL, 
	partnership_code VARCHAR(40) NOT NULL, 
	dataset VARCHAR(40) NOT NULL, 
	record_id VARCHAR(100) NOT NULL, 
	file_id INTEGER NOT NULL, 
	return_date DATE NOT NULL, 
	row_hash VARCHAR(64) NOT NULL, 
	values_json TEXT NOT NULL, 
	loaded_at DATETIME NOT NULL, 
	PRIMARY KEY (history_id), 
	CONSTRAINT uq_history_version UNIQUE (partnership_code, dataset, record_id, file_id)
);

CREATE TABLE retention_log (
	retention_id INTEGER NOT NULL, 
	as_of_date DATE NOT NULL, 
	cutoff_date DATE NOT NULL, 
	action VARCHAR(20) NOT NULL, 
	partnership_code VARCHAR(40) NOT NULL, 
	dataset VARCHAR(40) NOT NULL, 
	records INTEGER NOT NULL, 
	held INTEGER NOT NULL, 
	done_at DATETIME NOT NULL, 
	PRIMARY KEY (retention_id)
);

CREATE TABLE return_expectations (
	partnership_code VARCHAR(40) NOT NULL, 
	period_end DATE NOT NULL, 
	as_of_date DATE NOT NULL, 
	period_start DATE NOT NULL, 
	due_date DATE NOT NULL, 
	received_date DATE, 
	file_id INTEGER, 
	status VARCHAR(20) NOT NULL, 
	PRIMARY KEY (partnership_code, period_end, as_of_date)
);

CREATE TABLE return_files (
	file_id INTEGER NOT NULL, 
	partnership_code VARCHAR(40) NOT NULL, 
	file_name VARCHAR(255) NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	size_bytes BIGINT NOT NULL, 
	return_date DATE, 
	received_at DATETIME NOT NULL, 
	raw_path TEXT NOT NULL, 
	datasets VARCHAR(200), 
	rows_read INTEGER NOT NULL, 
	rows_loaded INTEGER NOT NULL, 
	rows_quarantined INTEGER NOT NULL, 
	rows_flagged INTEGER, 
	dropped_columns TEXT, 
	notes TEXT, 
	status VARCHAR(20) NOT NULL, 
	error TEXT, 
	quality_report_id INTEGER, 
	PRIMARY KEY (file_id), 
	CONSTRAINT uq_return_files_sha UNIQUE (partnership_code, sha256)
);

CREATE TABLE row_flags (
	flag_id INTEGER NOT NULL, 
	partnership_code VARCHAR(40) NOT NULL, 
	dataset VARCHAR(40) NOT NULL, 
	record_id VARCHAR(100) NOT NULL, 
	file_id INTEGER NOT NULL, 
	file_name VARCHAR(255) NOT NULL, 
	row_number INTEGER NOT NULL, 
	rule_id VARCHAR(120) NOT NULL, 
	columns VARCHAR(200) NOT NULL, 
	blanked INTEGER NOT NULL, 
	original_text TEXT, 
	message TEXT NOT NULL, 
	flagged_at DATETIME NOT NULL, 
	superseded_by_file_id INTEGER, 
	PRIMARY KEY (flag_id), 
	CONSTRAINT uq_row_flag UNIQUE (file_id, dataset, row_number, rule_id)
);

CREATE INDEX ix_row_flags_record ON row_flags (partnership_code, dataset, record_id);

CREATE TABLE timeliness (
	partnership_code VARCHAR(40) NOT NULL, 
	stage VARCHAR(30) NOT NULL, 
	record_id VARCHAR(100) NOT NULL, 
	as_of_date DATE NOT NULL, 
	start_date DATE, 
	due_date DATE, 
	completed_date DATE, 
	working_days_taken INTEGER, 
	status VARCHAR(20) NOT NULL, 
	rule_set VARCHAR(60), 
	reason TEXT, 
	PRIMARY KEY (partnership_code, stage, record_id, as_of_date)
);

CREATE TABLE timeliness_alerts (
	alert_id INTEGER NOT NULL, 
	partnership_code VARCHAR(40) NOT NULL, 
	stage VARCHAR(30) NOT NULL, 
	record_id VARCHAR(100) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	first_seen_as_of DATE NOT NULL, 
	due_date DATE, 
	working_days_left INTEGER, 
	rule_set VARCHAR(60), 
	send_status VARCHAR(20) NOT NULL, 
	attempt INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	sent_at DATETIME, 
	transport VARCHAR(20), 
	message_ref TEXT, 
	error TEXT, 
	PRIMARY KEY (alert_id), 
	CONSTRAINT uq_timeliness_alert_once UNIQUE (partnership_code, stage, record_id, status)
);

CREATE TABLE timeliness_runs (
	as_of_date DATE NOT NULL, 
	inputs_digest VARCHAR(64) NOT NULL, 
	rows INTEGER NOT NULL, 
	counts_json TEXT NOT NULL, 
	judged_at DATETIME NOT NULL, 
	PRIMARY KEY (as_of_date)
);
