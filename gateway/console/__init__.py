"""The web console's static files: HTML, CSS and JavaScript modules, no build step.

``gateway.console_routes`` serves them at ``/ui``; ``docs/console.md`` describes the console.
"""
