"""Extension objects, created once here and bound to the app in create_app() (avoids import cycles)."""

from typing import TYPE_CHECKING

from flask_babel import Babel
from flask_compress import Compress
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_talisman import Talisman
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)

# The base class of the models. db.Model is built at run time from Base (adding the table name,
# the query property and the app binding), so mypy cannot see it as a class; for type checking,
# Base, which it derives from, stands in for it.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model

migrate = Migrate()
mail = Mail()
csrf = CSRFProtect()
login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
babel = Babel()
talisman = Talisman()
compress = Compress()
