# The project's Airflow image: the official Airflow 3.3.2 image plus the pinned requirements,
# the business-logic package and the DAGs. Built by docker-compose.yml.
FROM apache/airflow:3.3.2-python3.11

# Headless Chromium prints the bulletin PDFs (include/reviews/learning/browser.py); Debian's package.
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium \
    && apt-get clean && rm -rf /var/lib/apt/lists/*
USER airflow

# The runtime pins only: requirements-dev.txt (tests, benchmarks, lint), tests/ and dev/ stay out
# of the image (tests/unit/test_deployment_files.py checks it).
COPY --chown=airflow:root requirements.txt /opt/project/requirements.txt
RUN pip install --no-cache-dir -r /opt/project/requirements.txt

COPY --chown=airflow:root pyproject.toml /opt/project/pyproject.toml
COPY --chown=airflow:root include /opt/project/include
COPY --chown=airflow:root plugins /opt/airflow/plugins
COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root config /opt/project/config
COPY --chown=airflow:root sql /opt/project/sql
RUN pip install --no-cache-dir --no-deps /opt/project

ENV GX_ANALYTICS_ENABLED=false \
    AIRFLOW_VAR_REVIEWS_CONFIG=/opt/project/config/reviews.yaml
