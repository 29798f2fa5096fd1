"""vzdivert: divert solar surplus into a resistive load, driven by a smart meter via vzlogger."""

__version__ = "0.1.0"
