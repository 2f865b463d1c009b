"""Configuration errors fail fast (no retries) and are told once per DAG run, saying what to set.

Issue 14 item 9: a missing or short pseudonymisation key was retried 15 times (3 tries x 5
partnerships) and alerted once per partnership. The settings now raise ConfigurationError (an
AirflowFailException: the task runner does not retry it) and the notifier sends one alert per
run and message. The whole DAG: tests/integration/test_config_fail_fast_dag.py.
"""
from __future__ import annotations

import email
import email.policy
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from reviews_airflow import settings
from reviews_airflow.notifier import BusinessUnitNotifier, claim_alert

SHORT_KEY = "sh0rt-k3y-xyz"  # 13 characters: too short, and never to be quoted
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("AIRFLOW_CONN_REVIEWS_SMTP", raising=False)
    monkeypatch.delenv("AIRFLOW_VAR_REVIEWS_CONFIG", raising=False)
    return tmp_path / "data"


def _messages(outbox: Path) -> list:
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in sorted(outbox.glob("*.eml"))]


def test_the_key_missing_or_short_fails_without_retries_naming_what_to_set(monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.delenv("AIRFLOW_CONN_REVIEWS_PSEUDONYMISATION", raising=False)
    for value in (None, "", SHORT_KEY):
        if value is None:
            monkeypatch.delenv("REVIEWS_PSEUDONYMISATION_KEY", raising=False)
        else:
            monkeypatch.setenv("REVIEWS_PSEUDONYMISATION_KEY", value)
        with pytest.raises(settings.ConfigurationError) as caught:
            settings.pseudonymisation_key()
        assert isinstance(caught.value, AirflowFailException)  # the task runner's "do not retry"
        text = str(caught.value)
        assert text.startswith("the pseudonymisation key is missing or shorter than 16 characters: ")
        assert "Airflow connection reviews_pseudonymisation (password field)" in text
        assert "REVIEWS_PSEUDONYMISATION_KEY" in text
        assert SHORT_KEY not in text and "13" not in text  # neither the key nor its length
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    monkeypatch.setenv("REVIEWS_PSEUDONYMISATION_KEY", "a-long-enough-key-0123456789")
    assert settings.pseudonymisation_key() == b"a-long-enough-key-0123456789"


def test_a_config_file_that_does_not_load_fails_naming_the_file_and_the_variable(tmp_path, monkeypatch):
    raw = yaml.safe_load((ROOT / "config" / "reviews.yaml").read_text(encoding="utf-8"))
    raw["circulation"] = {"schedule": {"time": "9am"}}
    bad = tmp_path / "reviews.yaml"
    bad.write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_CONFIG", str(bad))
    with pytest.raises(settings.ConfigurationError) as caught:
        settings.config()
    text = str(caught.value)
    assert "the configuration file cannot be used" in text and "Airflow Variable reviews_config" in text
    assert f"{bad}: circulation.schedule.time: must be HH:MM" in text
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_CONFIG", str(tmp_path / "nowhere.yaml"))
    with pytest.raises(settings.ConfigurationError, match="config file not found"):
        settings.config()


@pytest.mark.parametrize("conn,message", [
    ('{"conn_type": "http", "host": "x", "password": "Warehouse-Pw-991"}', "type 'http' is not supported"),
    ('{"conn_type": "sqlite", "password": "Warehouse-Pw-991"}', "has no database path"),
    ('{"conn_type": "sqlite", "host": "/no/such/folder/warehouse.db"}', "in a folder that does not exist"),
    # Airflow cannot parse these; before, the pipelines then used the embedded SQLite file silently.
    ('{"conn_type": "postgres", "password": "Warehouse-Pw-991"', "is set but Airflow cannot read it"),
    ("postgresql://user:Warehouse-Pw-991@host:notaport/db", "is set but Airflow cannot read it"),
])
def test_a_warehouse_connection_that_cannot_work_fails_naming_the_connection(monkeypatch, conn, message):
    monkeypatch.setenv("AIRFLOW_CONN_REVIEWS_WAREHOUSE", conn)
    with pytest.raises(settings.ConfigurationError) as caught:
        settings.warehouse_url()
    text = str(caught.value)
    assert message in text and "set the Airflow connection reviews_warehouse" in text
    assert "Warehouse-Pw-991" not in text


def test_an_smtp_connection_that_cannot_work_fails_naming_the_connection(monkeypatch, data_dir):
    monkeypatch.setenv("AIRFLOW_CONN_REVIEWS_SMTP", '{"conn_type": "smtp", "host": "mail", "password": "Smtp-Pw-5",'
                                                    ' "extra": {"security": "tls13"}}')
    with pytest.raises(settings.ConfigurationError) as caught:
        settings.transport()
    assert "Airflow connection reviews_smtp" in str(caught.value) and "Smtp-Pw-5" not in str(caught.value)


def _context(run_id: str, partnership: str, map_index: int, exc: BaseException) -> dict:
    ti = SimpleNamespace(dag_id="partnership_returns", task_id="ingest", run_id=run_id, map_index=map_index,
                         try_number=1, log_url="http://airflow/log")
    return {"ti": ti, "task": SimpleNamespace(op_kwargs={"partnership": partnership}), "exception": exc}


def _key_error() -> settings.ConfigurationError:
    try:
        import os

        os.environ["REVIEWS_PSEUDONYMISATION_KEY"] = SHORT_KEY
        settings.pseudonymisation_key()
    except settings.ConfigurationError as exc:
        return exc
    raise AssertionError("no error")


def test_one_alert_per_run_for_a_configuration_error(data_dir, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_REVIEWS_PSEUDONYMISATION", raising=False)
    monkeypatch.setenv("REVIEWS_PSEUDONYMISATION_KEY", SHORT_KEY)
    notifier = BusinessUnitNotifier()
    codes = ["knowsley", "liverpool", "sefton", "st_helens", "wirral"]
    for i, code in enumerate(codes):  # five mapped tasks fail the same way in one run
        notifier.notify(_context("scheduled__2026-11-02T06:00:00+00:00", code, i, _key_error()))
    [alert] = _messages(data_dir / "outbox")
    assert alert["Subject"] == "[reviews] configuration error: partnership_returns"
    assert alert["To"] == "business.unit@merseyside-safeguarding.gov.uk"
    text = alert.get_body(("plain",)).get_content()
    assert ("What to set: the pseudonymisation key is missing or shorter than 16 characters: set the Airflow "
            "connection reviews_pseudonymisation (password field) or the environment variable "
            "REVIEWS_PSEUDONYMISATION_KEY") in text
    assert "without retries" in text and "First task that failed: partnership_returns.ingest for knowsley" in text
    raw = b"".join(p.read_bytes() for p in (data_dir / "outbox").glob("*.eml"))
    assert SHORT_KEY.encode() not in raw
    # The next run that fails the same way is told again (once).
    for i, code in enumerate(codes):
        notifier.notify(_context("scheduled__2026-11-03T06:00:00+00:00", code, i, _key_error()))
    assert len(_messages(data_dir / "outbox")) == 2
    # Another configuration error in the same run is another alert.
    notifier.notify(_context("scheduled__2026-11-03T06:00:00+00:00", "", -1,
                             settings.ConfigurationError("the configuration file cannot be used: ...")))
    assert len(_messages(data_dir / "outbox")) == 3


def test_other_failures_are_still_told_per_task(data_dir):
    notifier = BusinessUnitNotifier()
    for i, code in enumerate(["knowsley", "sefton"]):
        notifier.notify(_context("manual__1", code, i, FileNotFoundError(f"{code}: the drop folder x does not exist")))
    subjects = sorted(m["Subject"] for m in _messages(data_dir / "outbox"))
    assert subjects == ["[reviews] failed: partnership_returns.ingest for knowsley",
                        "[reviews] failed: partnership_returns.ingest for sefton"]


def test_a_config_file_that_does_not_load_is_still_told(data_dir, tmp_path, monkeypatch):
    """The recipients come from the config; when it is the config that is broken, the project's own
    file names the business unit."""
    bad = tmp_path / "broken.yaml"
    bad.write_text("partnerships: [", encoding="utf-8")
    monkeypatch.setenv("AIRFLOW_VAR_REVIEWS_CONFIG", str(bad))
    with pytest.raises(settings.ConfigurationError) as caught:
        settings.config()
    BusinessUnitNotifier().notify(_context("manual__2", "", -1, caught.value))
    [alert] = _messages(data_dir / "outbox")
    assert alert["To"] == "business.unit@merseyside-safeguarding.gov.uk"
    assert "not valid YAML" in alert.get_body(("plain",)).get_content()


def test_a_failed_send_releases_the_claim(data_dir, monkeypatch):
    notifier = BusinessUnitNotifier()
    exc = settings.ConfigurationError("the pseudonymisation key is missing or shorter than 16 characters: set ...")

    def broken():
        raise OSError("mail server down")

    working = settings.transport
    monkeypatch.setattr(settings, "transport", broken)
    notifier.notify(_context("manual__3", "knowsley", 0, exc))  # logged, not raised
    assert not (data_dir / "outbox").exists() or not _messages(data_dir / "outbox")
    monkeypatch.setattr(settings, "transport", working)
    notifier.notify(_context("manual__3", "sefton", 1, exc))  # the next task to fail sends it
    assert len(_messages(data_dir / "outbox")) == 1
    assert claim_alert("partnership_returns", "manual__3", str(exc)) is None  # claimed now


@pytest.mark.parametrize("source", [{"kind": "sftp", "conn_id": "knowsley_sftp_nowhere", "path": "/out"},
                                    {"kind": "sql", "conn_id": "knowsley_db_nowhere",
                                     "queries": {"notifications": "select 1"}}])
def test_a_source_connection_that_does_not_exist_fails_naming_it(monkeypatch, source):
    import dataclasses

    from reviews.core.config import load_config

    monkeypatch.delenv(f"AIRFLOW_CONN_{source['conn_id'].upper()}", raising=False)
    p = dataclasses.replace(load_config().partnership("knowsley"), source=source)
    with pytest.raises(settings.ConfigurationError) as caught:
        with settings.source_access(p):
            pass
    assert str(caught.value).startswith(f"knowsley: the Airflow connection '{source['conn_id']}' of its "
                                        f"{source['kind']} source does not exist: set it")
