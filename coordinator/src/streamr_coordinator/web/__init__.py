"""The dashboards: server-rendered pages for operators, streamers and friends (cookie sessions)."""
