"""Child process: serve a GGUF model over the OpenAI chat-completions protocol with xllamacpp.

    python -m mlipilot.local_llm.child WEIGHTS ALIAS PORT N_CTX THREADS
"""

import signal
import sys
import threading


def main() -> None:
    weights, alias, port, n_ctx, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    import xllamacpp

    p = xllamacpp.CommonParams()
    p.model.path = weights
    p.model_alias = [alias]  # a plain string would be split into one-character aliases
    p.hostname = "127.0.0.1"
    p.port = port
    p.n_ctx = n_ctx
    p.n_parallel = 1  # one slot: the prompt cache then serves every append-only follow-up
    p.use_jinja = True  # the model's own chat template, which knows tools
    p.cpuparams.n_threads = threads
    p.cpuparams_batch.n_threads = threads
    server = xllamacpp.Server(p)  # noqa: F841  -- serves until this process ends
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    stop.wait()


if __name__ == "__main__":
    main()
