"""Ten lines against the demo: `taoplan apply`, `taoplan keys create app`, `taoplan gateway`, then
`TAOPLAN_KEY=<the key> python examples/gateway_client.py`."""

import os

from openai import OpenAI

client = OpenAI(base_url="http://127.0.0.1:4000/v1", api_key=os.environ["TAOPLAN_KEY"])
reply = client.chat.completions.create(
    model="captions",  # a service name from services.yaml
    messages=[{"role": "user", "content": "Describe the scene."}],
    max_tokens=64,  # sampling: explicit (the default): every applicable value is given
    temperature=0.7,
    top_p=0.8,
    user="alice",  # the end user, recorded beside the caller (the key's name)
)
print(reply.choices[0].message.content)
