# evledger as one image: `evledger run` (ingest + projectors) and `evledger serve` (the API).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY domain domain
COPY store store
COPY consumers consumers
COPY projections projections
COPY replay replay
COPY cli cli
COPY api api
COPY schemas schemas
RUN pip install . && useradd --create-home evledger && mkdir /data && chown evledger /data

USER evledger
ENV EVLEDGER_DATA_DIR=/data
ENTRYPOINT ["evledger"]
CMD ["--help"]
