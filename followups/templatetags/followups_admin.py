"""The dashboard on the admin index (clinic/templates/admin/index.html)."""

from django import template

from followups.dashboard import dashboard_for

register = template.Library()


@register.inclusion_tag("admin/followups/dashboard.html", takes_context=True)
def clinic_dashboard(context):
    return {"dashboard": dashboard_for(user=context["request"].user)}
