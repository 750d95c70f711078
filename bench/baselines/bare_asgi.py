"""The limit, for bench/serve.py only: a bare ASGI app on the server's HTTP stack (uvicorn + httptools + uvloop,
one worker, no access log) that reads the request body and answers fixed bytes. No routing, no JSON, no model:
what is left between it and modelship is the server's own work.

`python bare_asgi.py PORT`
"""
import sys

import uvicorn

# A batch-1 answer's size: ten probabilities, as TF Serving's row format writes them.
BODY = b'{"predictions":[[' + b",".join([b"0.1000000000"] * 10) + b"]]}"
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    if scope["type"] != "http":  # lifespan: nothing to start
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
            await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
                access_log=False, server_header=False, log_level="warning")
