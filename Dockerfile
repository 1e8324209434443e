# The ShelfWise API as an image: the finished app at the repository root, its runtime
# dependencies only (requirements-runtime.lock, hashes checked), run as an unprivileged user.
# docker-compose.yml builds and starts it with PostgreSQL and Redis; see docs/deployment.md.
FROM python:3.11-slim AS dependencies
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY requirements-runtime.lock /tmp/requirements-runtime.lock
RUN python -m venv /venv \
    && /venv/bin/pip install --require-hashes --no-deps -r /tmp/requirements-runtime.lock

FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home shelfwise
COPY --from=dependencies /venv /venv
WORKDIR /app
# The package itself, not installed: uvicorn and `python -m shelfwise` import it from here.
COPY shelfwise ./shelfwise
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER shelfwise
EXPOSE 8000
# One worker per container: each process has its own metrics (docs/observability.md); scale
# with more containers. The app writes its own access line, with the request's ids.
CMD ["uvicorn", "--factory", "shelfwise.main:create_app", "--host", "0.0.0.0", "--port", "8000", "--no-access-log", "--proxy-headers"]
