FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 curl \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY api api
COPY workers workers
COPY db db
COPY models models
COPY socialfer socialfer
RUN pip install .
RUN useradd --create-home socialfer
USER socialfer
EXPOSE 8000
CMD ["socialfer", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker"]
