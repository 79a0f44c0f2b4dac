//! Log formats (JSONL, Hugging Face trainer_state.json, CSV) and the follower.
