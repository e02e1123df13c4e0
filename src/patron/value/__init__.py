"""From model scores to decisions: CLV, RFM, grades, lifecycle stages, risk and actions."""
