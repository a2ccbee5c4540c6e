"""Query-string filters for the API's lists. They narrow what a selector already allows; no rules here."""

from __future__ import annotations

import django_filters

from governance.models import AuditEvent, DataRequest, Dataset, RequestState, Sensitivity


class DatasetFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(label="exact dataset name")
    sensitivity = django_filters.ChoiceFilter(choices=Sensitivity.choices, label="internal, confidential or restricted")

    class Meta:
        model = Dataset
        fields = ["name", "sensitivity"]


class DataRequestFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=RequestState.choices, label="request state, e.g. submitted")
    dataset = django_filters.CharFilter(field_name="dataset__name", label="dataset name")
    purpose = django_filters.CharFilter(field_name="purpose__name", label="purpose name")
    requester = django_filters.CharFilter(field_name="requester__username", label="requester's username")

    class Meta:
        model = DataRequest
        fields = ["state", "dataset", "purpose", "requester"]


class AuditEventFilter(django_filters.FilterSet):
    action = django_filters.CharFilter(label="action, e.g. request.approve")
    object_type = django_filters.CharFilter(label="object type, e.g. datarequest")
    object_id = django_filters.CharFilter(label="object id")

    class Meta:
        model = AuditEvent
        fields = ["action", "object_type", "object_id"]
