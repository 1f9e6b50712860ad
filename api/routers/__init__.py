"""REST routers, one per resource: health, concepts, patients, diagnoses, query."""
