"""Integration view: the cross-domain read model, KPIs against the masterplan, pages and live feed."""
