"""disksnap: a self-hostable disk and snapshot service speaking the Yandex Cloud Compute API."""

__version__ = "0.1.0"
