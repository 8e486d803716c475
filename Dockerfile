# One image for every Vitrine process; docker-compose.yml picks the command.
FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY vitrine ./vitrine
COPY server ./server
COPY gateway ./gateway
COPY mobile_api ./mobile_api
COPY firmware_sim ./firmware_sim
COPY deploy ./deploy
RUN uv sync --frozen --no-dev && useradd --system --home /app vitrine && mkdir -p /app/var && chown vitrine /app/var
ENV PATH="/app/.venv/bin:$PATH"
USER vitrine
ENTRYPOINT ["vitrine"]
