#!/usr/bin/env python3
"""Writes tests/fixtures/chat-templates/: chat templates in the shapes
checkpoints ship (ChatML with a default system turn as Qwen2, Llama 3's
header tokens with `| trim`, Zephyr, Mistral's alternation check with
raise_exception), each a tokenizer_config.json, and expected.json with what
transformers' own apply_chat_template renders for a few conversations (the
prompt with add_generation_prompt=True, and the full conversation).

    /work/research/venv/bin/python scripts/make_chat_template_fixture.py
"""
import json
import pathlib

import transformers
from transformers import PreTrainedTokenizerFast

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests/fixtures/chat-templates"
TOKENIZER = ROOT / "tests/fixtures/tokenizer/tokenizer.json"

TEMPLATES = {
    "chatml": (
        "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
        "{%- else %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
        "{%- for message in messages %}{%- if not (message.role == 'system' and loop.first) %}"
        "{{- '<|im_start|>' + message.role + '\\n' + message.content.strip() + '<|im_end|>' + '\\n' }}"
        "{%- endif %}{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
    ),
    "llama3": (
        "{{- bos_token }}{% for message in messages %}"
        "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
    ),
    "zephyr": (
        "{% for message in messages %}\n"
        "{% if message['role'] == 'user' %}\n{{ '<|user|>\\n' + message['content'] + eos_token }}\n"
        "{% elif message['role'] == 'system' %}\n{{ '<|system|>\\n' + message['content'] + eos_token }}\n"
        "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n"
        "{% endif %}\n"
        "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n"
        "{% endfor %}"
    ),
    "mistral": (
        "{{ bos_token }}{% for message in messages %}"
        "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
        "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
        "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
        "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
    ),
}

CONVERSATIONS = [
    [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
    [
        {"role": "user", "content": "  Name a colour.  "},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another?"},
        {"role": "assistant", "content": "Green."},
    ],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hi"},
        {"role": "assistant", "content": "hi"},
    ],
]


def main():
    expected = {"transformers": transformers.__version__, "cases": []}
    for name, template in TEMPLATES.items():
        folder = OUT / name
        folder.mkdir(parents=True, exist_ok=True)
        config = {"bos_token": "<s>", "eos_token": "</s>", "chat_template": template}
        (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1) + "\n")
        tok = PreTrainedTokenizerFast(tokenizer_file=str(TOKENIZER), bos_token="<s>", eos_token="</s>")
        tok.chat_template = template
        for i, messages in enumerate(CONVERSATIONS):
            case = {"template": name, "conversation": i, "messages": messages}
            try:
                case["prompt"] = tok.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
                case["full"] = tok.apply_chat_template(messages, tokenize=False)
            except Exception as e:  # the template refuses this conversation
                case["error"] = str(e)
            expected["cases"].append(case)
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"wrote {len(expected['cases'])} cases to {OUT}")


if __name__ == "__main__":
    main()
