"""The dashboard on the admin index (clinic/templates/admin/index.html)."""

from django import template

from followups.dashboard import dashboard_for

register = template.Library()


@register.inclusion_tag("admin/followups/dashboard.html", takes_context=True)
def clinic_dashboard(context):
    # The request goes along for its CSP nonce, which the dashboard's style block carries.
    request = context["request"]
    return {"dashboard": dashboard_for(user=request.user), "request": request}
