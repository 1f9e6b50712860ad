"""REST routers, one per resource: health, concepts, patients, diagnoses, model, query."""
