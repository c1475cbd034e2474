"""Hugging Face Space entry point: the hf-ser demo on the checkpoints bundled with it."""

from hf_ser.demo import build_demo, launch_options

demo = build_demo()

if __name__ == "__main__":
    demo.launch(**launch_options())
