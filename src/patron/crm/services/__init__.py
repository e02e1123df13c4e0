"""Services of the operational store: functions that take a session and never commit."""
