"""Registers the learning bulletins' timetable, so the scheduler can deserialise the DAGs that use it."""
from airflow.plugins_manager import AirflowPlugin

from reviews_airflow.timetables import ReportingPeriodTimetable


class ReviewsTimetablesPlugin(AirflowPlugin):
    name = "merseyside_reviews_timetables"
    timetables = [ReportingPeriodTimetable]
