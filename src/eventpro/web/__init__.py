"""The pages: Jinja2 templates and static files served by the API process."""
