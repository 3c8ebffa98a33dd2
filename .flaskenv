# Read by the `flask` command in a checkout (python-dotenv); not by gunicorn in production.
FLASK_APP=wsgi
TONGZHI_ENV=embedded
