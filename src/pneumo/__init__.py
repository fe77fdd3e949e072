"""pneumo: pneumonia detection on chest X-rays, from raw data to a deployed, monitored model."""

__version__ = "0.1.0"
