"""Historical retrieval routes, included under /api/v1/ by larder/urls.py."""

from django.urls import path

from . import views

app_name = "historical"
urlpatterns = [
    path("historical-features", views.HistoricalFeaturesView.as_view(), name="features"),
    path("historical-features/jobs/<uuid:job_id>", views.JobView.as_view(), name="job"),
    path("historical-features/jobs/<uuid:job_id>/result", views.JobResultView.as_view(), name="job-result"),
]
