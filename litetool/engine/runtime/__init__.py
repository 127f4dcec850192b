"""What every part of the engine runs on: the status board and its typed events
(``status``), supervised tasks and the watchdog (``supervisor``), memory
settings (``memory``) and reusable buffers (``buffers``)."""
