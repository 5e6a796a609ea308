"""The app's own package named `agents`: a host must hand the app this one, whatever else is called so."""

ORIGIN = "the app's own agents package"
