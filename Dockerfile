# One image for api, worker and migrate (docker-compose.yml). Dependencies are installed from
# uv.lock with their hashes checked, in a layer that is rebuilt only when the lock changes.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 curl \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml uv.lock ./
# uv only turns the lock into a hashed requirements list; pip installs it and uv is removed again.
RUN pip install uv==0.13.9 \
    && uv export --frozen --no-dev --extra flower --no-emit-project --format requirements-txt -o /tmp/requirements.txt \
    && pip install --require-hashes --no-deps -r /tmp/requirements.txt \
    && pip uninstall -y uv && rm /tmp/requirements.txt
COPY README.md ./
COPY api api
COPY workers workers
COPY core core
COPY analysis analysis
COPY db db
COPY models models
COPY socialfer socialfer
RUN pip install --no-deps .
RUN useradd --create-home socialfer
USER socialfer
EXPOSE 8000
CMD ["socialfer", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker"]
