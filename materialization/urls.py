"""Materialization's routes, included once at the root (larder/urls.py):

- Feast's feature-server endpoints `materialize` and `materialize-incremental`;
- the job REST API under `api/v1/materialization-jobs` (settings.LARDER_API_PREFIXES
  covers `/api/`, `/materialize`, `/materialize-incremental`: 401 for anonymous calls);
- the jobs page under `materialization/`.
"""

from django.urls import path

from . import api, views

app_name = "materialization"
urlpatterns = [
    path("materialize", api.MaterializeView.as_view(), name="materialize"),
    path("materialize-incremental", api.MaterializeIncrementalView.as_view(), name="materialize-incremental"),
    path("api/v1/materialization-jobs", api.JobListView.as_view(), name="api-jobs"),
    path("api/v1/materialization-jobs/<int:job_id>", api.JobDetailView.as_view(), name="api-job"),
    path("materialization/jobs/", views.jobs_page, name="jobs"),
    path("materialization/jobs/table", views.jobs_table, name="jobs-table"),
    path("materialization/jobs/<int:job_id>/", views.job_detail, name="job"),
    path("materialization/jobs/<int:job_id>/cancel", views.job_cancel, name="job-cancel"),
    path("materialization/run", views.run_incremental, name="run"),
]
