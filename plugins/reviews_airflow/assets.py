"""The hand-overs between DAGs (data-aware scheduling)."""
from airflow.sdk import Asset

CASES = Asset("merseyside_reviews_cases")  # partnership_returns -> statutory_timeliness
TIMELINESS = Asset("merseyside_reviews_timeliness")  # emitted by statutory_timeliness when it has judged (no DAG is scheduled on it yet)
BULLETINS = Asset("merseyside_reviews_bulletins")  # regional_learning_summary -> circulation
