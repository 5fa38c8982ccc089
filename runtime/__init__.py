"""Onboard runtime (Jetson, Python 3.10): camera -> preprocess -> backend -> policy -> serial link.

Imports neither TensorFlow nor MLflow: the car has neither.
"""
