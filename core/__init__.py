"""The ground layer: settings, the shared vocabulary and the filter value. Imports nothing of the project.

Every other package (api, workers, db, models, the CLI in socialfer) may import from here;
nothing here imports from them.
"""
