"""Facts about models, below both the plan and ``fit``: architectures from config.json or the
built-in catalog (:mod:`vllmtune.modelfacts.models`) and memory sizes as users write them
(:mod:`vllmtune.modelfacts.sizes`). Nothing here imports the profile, the plan or fit."""
