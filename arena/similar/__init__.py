"""Prompt embeddings for the boards for prompts like one prompt: every prompt's sentence
embedding (`embedding`), kept per prompt (`PromptEmbedding`, written by `vectors`). The
similarity-weighted board itself is the board's (`arena.board.similar`); the math is
`arena.ratings.similarity`."""
