"""Boards for prompts like one prompt: every prompt's sentence embedding (`embedding`), kept
per prompt (`PromptEmbedding`), and the similarity-weighted board of an arena (`boards`).
The math is `arena.ratings.similarity`."""
