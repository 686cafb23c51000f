"""The API's routes, one module per concern (docs/API.md): each builds an ``APIRouter``
over the shared ``ApiContext``."""
