"""Registers the project's Airflow extensions: the business unit's status page."""
from airflow.plugins_manager import AirflowPlugin

from reviews_airflow.ui import app as status_app


class MerseysideReviewsPlugin(AirflowPlugin):
    name = "merseyside_reviews"
    fastapi_apps = [{"app": status_app, "url_prefix": "/reviews", "name": "Merseyside practice reviews"}]

    external_views = [
        {
            "name": "Partnership returns",
            "href": "/reviews/",
            "destination": "nav",
            "category": "browse",
            "url_route": "partnership-returns",
        }
    ]
