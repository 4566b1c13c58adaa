"""Board descriptions bundled with snnhw (data only; installed as the package ``snnhw.assets_boards``,
see ``snnhw.assets``)."""
