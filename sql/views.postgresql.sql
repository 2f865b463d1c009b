-- Generated from include/reviews/core/views.py by `make schema`; do not edit by hand.
-- Reporting views for analysts (docs/design.md, "Reporting views"; docs/analysts.md).

DROP VIEW IF EXISTS v_case_journeys;
CREATE VIEW v_case_journeys AS
SELECT notifications.partnership_code, notifications.notification_id, notifications.incident_type, notifications.incident_date, notifications.aware_date, notifications.notified_date, rr.rapid_review_id, rr.completed_date AS rapid_review_completed_date, rr.outcome AS rapid_review_outcome, rr.panel_response_date, rr.panel_decision, coalesce(rr.how_many, 0) AS rapid_reviews, pr.review_id, pr.review_type, pr.decision_date AS review_decision_date, pr.completed_date AS review_completed_date, pr.final_report_sent_date, pr.published_date AS review_published_date, pr.status AS review_status, coalesce(pr.how_many, 0) AS practice_reviews 
FROM notifications LEFT OUTER JOIN (SELECT rapid_reviews.partnership_code AS partnership_code, rapid_reviews.notification_id AS notification_id, rapid_reviews.rapid_review_id AS rapid_review_id, rapid_reviews.completed_date AS completed_date, rapid_reviews.outcome AS outcome, rapid_reviews.panel_response_date AS panel_response_date, rapid_reviews.panel_decision AS panel_decision, row_number() OVER (PARTITION BY rapid_reviews.partnership_code, rapid_reviews.notification_id ORDER BY CASE WHEN (rapid_reviews.completed_date IS NULL) THEN 1 ELSE 0 END, rapid_reviews.completed_date, rapid_reviews.rapid_review_id) AS pick, count(*) OVER (PARTITION BY rapid_reviews.partnership_code, rapid_reviews.notification_id) AS how_many 
FROM rapid_reviews) AS rr ON rr.partnership_code = notifications.partnership_code AND rr.notification_id = notifications.notification_id AND rr.pick = 1 LEFT OUTER JOIN (SELECT practice_reviews.partnership_code AS partnership_code, practice_reviews.notification_id AS notification_id, practice_reviews.review_id AS review_id, practice_reviews.review_type AS review_type, practice_reviews.decision_date AS decision_date, practice_reviews.completed_date AS completed_date, practice_reviews.final_report_sent_date AS final_report_sent_date, practice_reviews.published_date AS published_date, practice_reviews.status AS status, row_number() OVER (PARTITION BY practice_reviews.partnership_code, practice_reviews.notification_id ORDER BY practice_reviews.decision_date, practice_reviews.review_id) AS pick, count(*) OVER (PARTITION BY practice_reviews.partnership_code, practice_reviews.notification_id) AS how_many 
FROM practice_reviews 
WHERE practice_reviews.notification_id IS NOT NULL) AS pr ON pr.partnership_code = notifications.partnership_code AND pr.notification_id = notifications.notification_id AND pr.pick = 1;
COMMENT ON VIEW v_case_journeys IS 'reviews view 3011eed087f2edd7';

DROP VIEW IF EXISTS v_latest_timeliness;
CREATE VIEW v_latest_timeliness AS
SELECT timeliness.partnership_code, timeliness.stage, timeliness.record_id, timeliness.as_of_date, timeliness.start_date, timeliness.due_date, timeliness.completed_date, timeliness.working_days_taken, timeliness.status, timeliness.rule_set 
FROM timeliness JOIN (SELECT timeliness.partnership_code AS partnership_code, timeliness.stage AS stage, timeliness.record_id AS record_id, max(timeliness.as_of_date) AS as_of_date 
FROM timeliness GROUP BY timeliness.partnership_code, timeliness.stage, timeliness.record_id) AS newest ON timeliness.partnership_code = newest.partnership_code AND timeliness.stage = newest.stage AND timeliness.record_id = newest.record_id AND timeliness.as_of_date = newest.as_of_date;
COMMENT ON VIEW v_latest_timeliness IS 'reviews view c169ffac93e51333';

DROP VIEW IF EXISTS v_actions;
CREATE VIEW v_actions AS
SELECT learning.partnership_code, learning.finding_id, learning.review_id, practice_reviews.review_type, practice_reviews.completed_date AS review_completed_date, learning.theme, learning.owner_agency, learning.action_due_date, learning.action_status, learning.action_completed_date, CURRENT_DATE AS state_as_of, CASE WHEN (learning.action_completed_date IS NOT NULL AND learning.action_completed_date <= CURRENT_DATE OR learning.action_status = 'completed' AND learning.action_completed_date IS NULL) THEN 'completed' WHEN (learning.action_due_date IS NOT NULL AND learning.action_due_date < CURRENT_DATE) THEN 'overdue' WHEN (learning.action_status IN ('in_progress', 'completed')) THEN 'in_progress' ELSE 'open' END AS action_state, CASE WHEN (CASE WHEN (learning.action_completed_date IS NOT NULL AND learning.action_completed_date <= CURRENT_DATE OR learning.action_status = 'completed' AND learning.action_completed_date IS NULL) THEN 'completed' WHEN (learning.action_due_date IS NOT NULL AND learning.action_due_date < CURRENT_DATE) THEN 'overdue' WHEN (learning.action_status IN ('in_progress', 'completed')) THEN 'in_progress' ELSE 'open' END = 'overdue') THEN 1 ELSE 0 END AS is_overdue 
FROM learning LEFT OUTER JOIN practice_reviews ON practice_reviews.partnership_code = learning.partnership_code AND practice_reviews.review_id = learning.review_id 
WHERE length(trim(coalesce(learning.recommendation, ''))) > 0 OR learning.action_status IS NOT NULL OR learning.action_due_date IS NOT NULL;
COMMENT ON VIEW v_actions IS 'reviews view a1eeff58f11cd76e';

DROP VIEW IF EXISTS v_themes_by_period;
CREATE VIEW v_themes_by_period AS
SELECT dated.partnership_code, dated.theme, dated.year, dated.quarter, CAST(dated.year AS VARCHAR) || '-Q' || CAST(dated.quarter AS VARCHAR) AS period, CAST(dated.fy AS VARCHAR) || '-' || substr(CAST(dated.fy + 1 AS VARCHAR), 3, 2) AS financial_year, dated.dated_by, count(*) AS findings, count(DISTINCT dated.review_id) AS reviews 
FROM (SELECT learning.partnership_code AS partnership_code, learning.theme AS theme, learning.review_id AS review_id, CAST(EXTRACT(year FROM coalesce(practice_reviews.completed_date, practice_reviews.decision_date)) AS INTEGER) AS year, (CAST(EXTRACT(month FROM coalesce(practice_reviews.completed_date, practice_reviews.decision_date)) AS INTEGER) + 2) / 3 AS quarter, CASE WHEN (CAST(EXTRACT(month FROM coalesce(practice_reviews.completed_date, practice_reviews.decision_date)) AS INTEGER) >= 4) THEN CAST(EXTRACT(year FROM coalesce(practice_reviews.completed_date, practice_reviews.decision_date)) AS INTEGER) ELSE CAST(EXTRACT(year FROM coalesce(practice_reviews.completed_date, practice_reviews.decision_date)) AS INTEGER) - 1 END AS fy, CASE WHEN (practice_reviews.completed_date IS NOT NULL) THEN 'completed' ELSE 'decided' END AS dated_by 
FROM learning JOIN practice_reviews ON practice_reviews.partnership_code = learning.partnership_code AND practice_reviews.review_id = learning.review_id 
WHERE coalesce(practice_reviews.completed_date, practice_reviews.decision_date) IS NOT NULL) AS dated GROUP BY dated.partnership_code, dated.theme, dated.year, dated.quarter, dated.fy, dated.dated_by;
COMMENT ON VIEW v_themes_by_period IS 'reviews view 4a478ed139610653';

DROP VIEW IF EXISTS v_returns_quality;
CREATE VIEW v_returns_quality AS
SELECT return_files.partnership_code, return_files.file_id, return_files.file_name, return_files.return_date, return_files.received_at, return_files.datasets, return_files.rows_read, return_files.rows_loaded, return_files.rows_quarantined, coalesce(waiting.n, 0) AS rows_awaiting_correction, return_files.status 
FROM return_files LEFT OUTER JOIN (SELECT quarantine.file_id AS file_id, count(*) AS n 
FROM quarantine 
WHERE quarantine.resolved_by_file_id IS NULL GROUP BY quarantine.file_id) AS waiting ON waiting.file_id = return_files.file_id;
COMMENT ON VIEW v_returns_quality IS 'reviews view 7c177ffc4dddb4eb';
