# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY config ./config
RUN python -m venv /opt/msgworker \
 && /opt/msgworker/bin/pip install --no-cache-dir .

FROM python:3.11-slim
COPY --from=build /opt/msgworker /opt/msgworker
ENV PATH=/opt/msgworker/bin:$PATH \
    PYTHONUNBUFFERED=1
USER 10001:10001
ENTRYPOINT ["msgworker"]
CMD ["--help"]
