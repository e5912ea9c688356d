"""An output's content: media files checked by their bytes (`media`), markdown rendered
safely (`rendering`), markdown style counts (`textstats`)."""
