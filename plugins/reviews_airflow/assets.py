"""The hand-overs between DAGs (data-aware scheduling)."""
from airflow.sdk import Asset

CASES = Asset("merseyside_reviews_cases")  # partnership_returns -> statutory_timeliness
TIMELINESS = Asset("merseyside_reviews_timeliness")  # statutory_timeliness -> summaries
BULLETINS = Asset("merseyside_reviews_bulletins")  # regional_learning_summary -> circulation
