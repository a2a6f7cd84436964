from tests.portal_app.models import Note


def notes_panel_figures(*, now) -> dict:
    return {"notes": Note.objects.count(), "computed_at": now.isoformat()}


def notes_panel_shape(data: dict) -> dict:
    data["label"] = f"{data['notes']} notes"
    return data
