# Researchers start, watch and cancel runs; annotators never see training.
ROLE_PERMISSIONS = {
    "researcher": ["training.view_trainingrun", "training.add_trainingrun", "training.change_trainingrun"],
}
