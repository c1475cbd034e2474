"""Hugging Face Space entry point: the hf-ser demo on the checkpoints bundled with it."""

import gradio as gr

from hf_ser.demo import CSS, build_demo

demo = build_demo()

if __name__ == "__main__":
    demo.launch(theme=gr.themes.Soft(), css=CSS)
