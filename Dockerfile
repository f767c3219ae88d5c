# The image for the scale-out deployments in prefect.yaml, and for the Dask workers they use:
#   docker build -t personasim:0.1.0 .
FROM python:3.11-slim
WORKDIR /opt/personasim
COPY pyproject.toml README.md ./
COPY personasim personasim
COPY flows flows
COPY tasks tasks
COPY configs configs
COPY datasets datasets
COPY prefect.yaml ./
RUN pip install --no-cache-dir '.[dask]'
# Dask workers started from this image run without the profiler that can deadlock a worker on
# Python 3.11 (python/cpython#116969; see flows/runners.py)
ENV PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1 DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False
