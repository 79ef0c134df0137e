# PerfShop app image: one image for web (the default command), worker and one-off commands.
#
#   docker build -t perfshop .
#   docker run --rm -p 127.0.0.1:8000:8000 -e DATABASE_URL=... -e REDIS_URL=... perfshop
#
# The commands come from the Procfile (copied into the image): the entrypoint,
# `python -m shop.procfile exec`, runs a Procfile entry by name (`web`, `worker`) or any
# command given to it, expanding `${VAR:-default}` from the container's environment first.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.local \
    WEB_BIND=0.0.0.0:8000

WORKDIR /app

# Dependencies first, in their own layer: with no package sources present yet this installs
# only what pyproject.toml requires, so editing the code does not reinstall them.
COPY pyproject.toml ./
RUN touch README.md && pip install . && rm -rf build ./*.egg-info

# Then the project itself. Copied path by path so a build context without a .dockerignore
# still never brings a local .venv, .stack or .git into the image. A new Django app needs its
# line here too (as well as its entry in pyproject.toml's packages.find).
COPY manage.py Procfile ./
COPY config/ config/
COPY shop/ shop/
COPY catalog/ catalog/
COPY orders/ orders/
RUN pip install --no-deps --force-reinstall . \
    && rm -rf build ./*.egg-info \
    && useradd --create-home --uid 10001 --user-group perfshop

USER perfshop

EXPOSE 8000

ENTRYPOINT ["python", "-m", "shop.procfile", "exec"]
CMD ["web"]
