"""Everything this test feature adds to the portal: one page, one dashboard panel, one export target."""

from backoffice.extension_point import Column, ExportTarget, Page, Panel, Urls

URLS = [Urls("admin/notes-report/", "tests.portal_app.urls")]
PAGES = [Page("portal_app:report", "Notes report", "portal_app.view_report")]
PANELS = [
    Panel(
        key="notes",
        title="Notes",
        permission="portal_app.view_note",
        template="portal_app/panel.html",
        compute="tests.portal_app.figures.notes_panel_figures",
        shape="tests.portal_app.figures.notes_panel_shape",
        refresh_seconds=300,
    )
]
EXPORTS = [
    ExportTarget(
        key="notes",
        label="Notes",
        model_label="portal_app.Note",
        permission="portal_app.export_note",
        columns=(Column("id", "ID"), Column("title", "Title"), Column("words", "Words")),
        importable=True,
    )
]
