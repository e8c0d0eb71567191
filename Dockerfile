# One image for web, worker, beat and migrate (docker-compose.yml picks the command).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY services ./services
COPY workers ./workers
COPY db ./db
COPY classifiers ./classifiers
COPY reviews ./reviews
RUN pip install . && useradd --create-home --uid 10001 living && mkdir -p /data \
    && chown living /data
USER living
ENV REVIEWS_DIR=/app/reviews DATA_DIR=/data
EXPOSE 8000
CMD ["living-review", "--help"]
