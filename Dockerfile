# One image for every process of HFS Follow-up: the web app (gunicorn, the default command), the
# Celery worker and beat, and the one-off `migrate` step; docker-compose.yml runs them all from it.
# Settings come from the environment at run time (README, clinic/settings.py): nothing secret or
# site-specific is baked in.
FROM python:3.11-slim

# VAR_DIR holds whatever the app writes at run time (nothing, once DATABASE_URL, REDIS_URL and
# EMAIL_URL are set); STATIC_ROOT is filled at build time, outside the source tree.
# gunicorn binds 0.0.0.0:$PORT when PORT is set and starts $WEB_CONCURRENCY workers.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles \
    PORT=8000 \
    WEB_CONCURRENCY=3

WORKDIR /app

RUN groupadd --system --gid 10001 clinic \
    && useradd --system --uid 10001 --gid clinic --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin clinic

# Requirements first, so a code change does not reinstall them.
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .

# Production settings refuse to load without these; collectstatic reads none of them, so they are
# placeholders that live only for this step (the real ones come with `docker run`/compose).
# Production mode matters: it selects the manifest storage whose manifest the app reads at run time.
RUN DJANGO_ENV=production \
    SECRET_KEY=collectstatic-placeholder-never-used-to-sign-anything \
    DATABASE_URL=sqlite:////tmp/collectstatic.sqlite3 \
    REDIS_URL=redis://127.0.0.1:6379/0 \
    ALLOWED_HOSTS=localhost \
    EMAIL_URL=smtp://localhost:25 \
    SITE_URL=https://localhost \
    python manage.py collectstatic --noinput

# The code stays owned by root and read-only to the app; only VAR_DIR is the app's to write.
RUN mkdir -p "$VAR_DIR" && chown clinic:clinic "$VAR_DIR"
USER clinic

EXPOSE 8000

# Django answers only for ALLOWED_HOSTS, so the probe presents the first of them ("*" is a pattern,
# not a name). /healthz is exempt from the HTTPS redirect, so plain HTTP suffices.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request as r; h = os.environ.get('ALLOWED_HOSTS', 'localhost').split(',')[0].strip().replace('*', 'localhost'); r.urlopen(r.Request('http://127.0.0.1:%s/healthz' % os.environ['PORT'], headers={'Host': h}), timeout=4)"

# Heartbeat files on /dev/shm: on the container's overlay file system they can stall workers.
CMD ["gunicorn", "clinic.wsgi:application", "--config", "python:clinic.gunicorn", "--worker-tmp-dir", "/dev/shm"]
